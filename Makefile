.PHONY: run test test-fast lint
run:  ## install, seed the demo and start web + worker + fake OpenAI
	./scripts/steward run
test:  ## install everything and run the whole test suite
	./scripts/steward test
test-fast:  ## the quick loop while you work: no browser, worker or chaos tests, in parallel
	./scripts/steward test -m "not browser and not worker and not chaos" -n auto
lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
