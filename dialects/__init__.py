"""tinyattn.dialects"""
