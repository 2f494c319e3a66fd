# Wrong - no step_type
with run.step("filter_products") as step:
    ...

# Correct - includes step_type
with run.step("filter_products", step_type="filter") as step:
    ...
