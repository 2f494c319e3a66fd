# Default: counts + samples (recommended)
with run.step("filter", step_type="filter") as step:
    ...

# Debug mode: capture everything
with run.step("filter", step_type="filter", capture="full") as step:
    ...

# Minimal: counts only (for high-volume steps)
with run.step("filter", step_type="filter", capture="minimal") as step:
    ...
