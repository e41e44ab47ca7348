"""tinyattn.lowering"""
