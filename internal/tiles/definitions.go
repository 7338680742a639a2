package tiles

import "fmt"

// Tile ids.
const (
	Summary        = "misp-summary"
	ThreatLevels   = "misp-threat-levels"
	AttributeTypes = "misp-attribute-types"
	TopTags        = "misp-top-tags"
	LatestEvents   = "misp-latest-events"
)

// Tile types, as XDR's dashboard draws them.
const (
	TypeMetricGroup      = "metric_group"
	TypeVerticalBarChart = "vertical_bar_chart"
	TypeDonutGraph       = "donut_graph"
	TypeMarkdown         = "markdown"
)

// Definition is one tile as /tiles lists it.
type Definition struct {
	ID               string   `json:"id"`
	Type             string   `json:"type"`
	Title            string   `json:"title"`
	Description      string   `json:"description"`
	ShortDescription string   `json:"short_description"`
	Periods          []Period `json:"periods"`
	DefaultPeriod    Period   `json:"default_period"`
	Tags             []string `json:"tags"`
}

// Definitions returns the five tiles, in the order the dashboard offers them.
func Definitions() []Definition {
	def := func(id, typ, title, short, desc string, p Period) Definition {
		return Definition{
			ID: id, Type: typ, Title: title, ShortDescription: short, Description: desc,
			Periods: AllPeriods(), DefaultPeriod: p, Tags: []string{"misp"},
		}
	}
	return []Definition{
		def(Summary, TypeMetricGroup, "MISP: what came in",
			"Events, attributes, IDS attributes and sightings added in the period",
			"How many events, attributes, attributes flagged for IDS and sightings MISP received in the period (events and attributes by their last change, sightings by their date), each with the figure of the period before for comparison.",
			Last7Days),
		def(ThreatLevels, TypeVerticalBarChart, "MISP: events by threat level",
			"Events per day (per hour over 24 hours) by threat level",
			"The events added or changed in the period, per day (per hour for the last 24 hours), split by their threat level: High, Medium, Low, Undefined.",
			Last7Days),
		def(AttributeTypes, TypeDonutGraph, "MISP: IDS indicators by kind",
			"IDS-flagged attributes of the period by type group",
			"The attributes flagged for IDS added or changed in the period, by kind: network (IPs, domains, hostnames), file hashes, URLs, email, and other types.",
			Last7Days),
		def(TopTags, TypeDonutGraph, "MISP: top tags",
			"The most used tags of the period's events, galaxy clusters first",
			fmt.Sprintf("The %d tags most used by the events of the period: galaxy clusters (threat actors, malware families, ...) first, then the other tags, each by the number of events carrying it.", maxTags),
			Last30Days),
		def(LatestEvents, TypeMarkdown, "MISP: latest high-threat events",
			"The newest High (then Medium) threat events of the period",
			fmt.Sprintf("The %d newest events of the period of High threat level, then Medium, with their organisation, date, attribute count and a link into MISP.", maxLatest),
			Last7Days),
	}
}

// DefinitionOf returns the tile id, or an *ArgumentError.
func DefinitionOf(id string) (Definition, error) {
	for _, d := range Definitions() {
		if d.ID == id {
			return d, nil
		}
	}
	return Definition{}, unknownTile(id)
}

func unknownTile(id string) error {
	return &ArgumentError{fmt.Sprintf("Unknown tile_id %q: the tiles are %s, %s, %s, %s and %s.", id, Summary, ThreatLevels, AttributeTypes, TopTags, LatestEvents)}
}
