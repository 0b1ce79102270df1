"""The reference ML serving stack (feature store, model replicas, gateway) that chaosml breaks."""
