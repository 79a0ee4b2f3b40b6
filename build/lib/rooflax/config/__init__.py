"""What is priced: number formats, accelerators, models, acceptance models and the sweep spec."""
