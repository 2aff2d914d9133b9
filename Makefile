# Thin wrapper over scripts/dev, which is what CI runs.
.PHONY: run test lint schema bindings e2e screenshots bench bench-quick fuzz
run:
	bash scripts/dev run
test:
	bash scripts/dev test
lint:
	bash scripts/dev lint
schema:
	bash scripts/dev schema
bindings:
	bash scripts/dev bindings
e2e:
	bash scripts/dev e2e
screenshots:
	bash scripts/dev screenshots
bench:
	bash scripts/dev bench
bench-quick:
	bash scripts/dev bench --quick
fuzz:
	bash scripts/dev fuzz
