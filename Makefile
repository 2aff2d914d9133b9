# Thin wrapper over scripts/dev, which is what CI runs.
.PHONY: run test lint schema
run:
	bash scripts/dev run
test:
	bash scripts/dev test
lint:
	bash scripts/dev lint
schema:
	bash scripts/dev schema
