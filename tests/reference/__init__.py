"""NumPy references: float64, written from the mathematics, never importing pyengine."""
