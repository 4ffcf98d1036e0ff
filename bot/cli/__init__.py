"""bot/cli/main"""
