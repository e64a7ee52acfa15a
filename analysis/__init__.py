"""analysis: run directories to tables and figures (pandas, matplotlib only)."""
