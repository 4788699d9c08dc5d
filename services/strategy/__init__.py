"""Strategy: the Senex Trident suggestion (strikes, pricing, Greeks, overlap checks)."""
