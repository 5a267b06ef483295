package model

import "time"

// SalesTick is a snapshot of the running sales figures for live dashboards.
type SalesTick struct {
	At       time.Time
	Today    SalesFigures // since midnight UTC
	ThisHour SalesFigures // since the start of the current hour
}

// GroupedSeries is a series of a report with the grouping it belongs to, so that the API
// can tell which kind of object its GroupID names.
type GroupedSeries struct {
	GroupBy SalesGroupBy
	SalesSeries
}
