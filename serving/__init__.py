"""The classification service for line software (BentoML): models, rules, answers, prediction log."""
