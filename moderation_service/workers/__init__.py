"""RQ workers: the worker process, its job functions, and the reaper that re-runs lost jobs."""
