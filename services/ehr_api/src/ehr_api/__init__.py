"""The EHR platform service (skeleton until the platform-core issue)."""
