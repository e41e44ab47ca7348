"""tinyattn.frontend"""
