"""tinyattn.driver: compile/run orchestration, harness and reports (what CLIs and API call)."""
