"""bot/ops/operations"""
