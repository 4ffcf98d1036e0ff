"""bot/audit/writer"""
