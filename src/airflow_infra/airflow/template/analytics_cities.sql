DROP TABLE IF EXISTS analytics.cities_by_state;
CREATE TABLE analytics.cities_by_state AS
SELECT state, count(*) AS cities, sum(population) AS population
FROM raw.cities
GROUP BY state;
