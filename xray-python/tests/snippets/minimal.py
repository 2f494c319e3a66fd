from xray import XRay

with XRay("my_pipeline").run(input=data) as run:
    result = my_existing_code()  # unchanged
    run.set_output(result)
