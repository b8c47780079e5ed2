"""Hardware cost models: what a layer costs at a chosen (weight bits, activation bits) on an accelerator preset."""
