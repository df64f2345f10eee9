# clusterops.upgrade — the two commands a newcomer needs come first.
#   make demo   bring up the lab and run the upgrade playbook against it
#   make test   every check CI runs (sanity, units, lint, changelog, docs,
#               integration, lab + molecule); ends with pytest's summary line
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(subst $(CURDIR)/$(BIN):,,$(PATH))
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_PIPELINING := 1
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test help deps sanity units lint changelog-lint docs integration \
        lab-up lab-down lab-status molecule bench clean

demo: deps ## run the upgrade on the lab (builds it first) and print the report path
	tools/demo

test: deps ## every check; non-zero on any failure; ends with pytest's summary line
	tools/test-all

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

deps: ## Debian packages, .venv, collection link, ansible-test bootstrap cache
	tools/bootstrap

sanity: deps ## ansible-test sanity (ignore files stay empty)
	tools/test-all sanity

units: deps ## unit tests (pytest)
	tools/test-all units

lint: deps ## ansible-lint, production profile
	tools/test-all lint

changelog-lint: deps ## antsibull-changelog lint
	tools/test-all changelog

docs: deps ## build the antsibull-docs site into build/docs/html
	tools/test-all docs

integration: deps ## integration tests that need no lab
	tools/test-all integration

lab-up: deps ## build (cached) and start the lab cluster
	tests/lab/labctl up

lab-down: ## stop the lab and release everything it held
	tests/lab/labctl down

lab-status: ## cluster, VM placement and product version per node
	tests/lab/labctl status

molecule: deps ## molecule scenarios against the running lab
	tools/test-all molecule

clean: ## remove build output (keeps .venv and the lab image cache)
	rm -rf build tests/output reports
