with xray.run(input=data) as run:

    with run.step("filter", step_type="filter") as step:
        step.set_input_count(len(candidates))

        for item in candidates:
            if item.price > threshold:
                step.reject(item.id, "price_too_high", {"price": item.price})
            else:
                step.accept(item.id)

        step.set_output_count(len(filtered))
