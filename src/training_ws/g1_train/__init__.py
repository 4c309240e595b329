"""G1 tracker training workspace."""
