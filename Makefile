# Thin wrapper over scripts/dev, which is what CI runs.
.PHONY: run test lint schema bindings e2e screenshots
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
