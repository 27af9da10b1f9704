"""The defect proof and its registry, and the mutation campaign's tooling."""
