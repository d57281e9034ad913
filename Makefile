.PHONY: run test lint
run:  ## install, seed the demo and start web + worker + fake OpenAI
	./scripts/steward run
test:  ## install everything and run the whole test suite
	./scripts/steward test
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
