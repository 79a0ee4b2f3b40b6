"""What an op costs: shapes, the op set, FLOPs and bytes, the roofline row and the achieved terms."""
