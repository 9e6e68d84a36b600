"""The one composition function the three front ends share (arguments in, a run context out)."""
