"""bot/execution"""
