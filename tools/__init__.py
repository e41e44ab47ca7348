"""tinyattn.tools"""
