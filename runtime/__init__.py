"""tinyattn.runtime"""
