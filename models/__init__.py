"""tinyattn.models"""
