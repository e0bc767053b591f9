"""secgate: the scan pipeline and merge gate (SAST, SCA, secrets, DAST, config)."""
