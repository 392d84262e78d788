"""Dataset versions: frozen manifests with group-aware splits, a cleaning table, lineage, and blind sets
kept apart from every training split by content hash."""
