"""Integrations of omcache with frameworks (``omcache.contrib.django``)."""
