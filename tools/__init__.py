"""Developer tools: benchmarks, chaos runs, load generation, seeding. The product never imports them."""
