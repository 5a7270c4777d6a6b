"""Kernel layer 3 (private): names -> a checked Plan, torch-free (compose, plan, the parameter reader)."""
