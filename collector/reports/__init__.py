"""Pure report builders over the store: spend, pools, break-even, call costs, in any currency."""
