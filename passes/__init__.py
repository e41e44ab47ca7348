"""tinyattn.passes"""
