"""Pictures of runs and submissions: `toolkit report` (an HTML page with PNG figures) and
`toolkit ledger plot`. Figures are drawn with matplotlib's Agg backend (no display needed)."""
