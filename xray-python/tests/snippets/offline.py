xray = XRay("pipeline", offline_mode="buffer")
