"""Demand model, pattern mining, assortment choice, backtest metrics: plain functions."""
