"""Model runners: training, scoring, alerting, backtest and the model registry; thin loops over storage and the pure models."""
