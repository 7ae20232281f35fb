"""One reconcile as a straight list of phases: source, render, decrypt, plan, apply."""
