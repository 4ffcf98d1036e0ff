"""bot/app/wiring"""
