"""Operations: the preflight doctor and the OpenTelemetry metrics."""
