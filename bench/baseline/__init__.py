"""A tiny host project: omniman_api under /api/ and bare DRF views (the ceiling) under /bare/."""
