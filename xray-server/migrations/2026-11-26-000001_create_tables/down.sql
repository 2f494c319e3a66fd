DROP TABLE samples;
DROP TABLE step_reasons;
DROP TABLE steps;
DROP TABLE runs;
