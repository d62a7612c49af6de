"""tinyjax.search: budgets, TinyNAS and the Rubik's-cube formula."""
