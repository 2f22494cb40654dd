// Package schedule decides when organizations migrate. It has two parts.
//
// Cutover windows. A Window is a weekly set of hours in a time zone during
// which an organization may cut over (freeze, final delta, routing switch),
// written as a spec such as
//
//	Mon-Fri 18:00-23:00; Sat,Sun 00:00-24:00 Europe/London
//	Fri 22:00-06:00 America/New_York
//
// ParseWindow documents the grammar. Contains says whether a window is open
// at an instant and Next finds the window around or after it, with clock
// changes handled explicitly (see Window). A Window marshals to its
// canonical spec, so it travels as a string in workflow inputs.
//
// Capacity planning. PlanCampaign lays an inventory of organizations onto a
// Calendar of daily capacities (mailboxes per weekday and per weekend day,
// holidays, optionally the days a cutover window opens): waves in order,
// inventory order within a wave, no day over capacity, an organization
// split over consecutive days only when no single day can hold it. The Plan
// gives each organization its start day and each day its load, and prints
// as a table. It takes a few milliseconds for 25,000 organizations.
//
// Why pure. Both parts are meant to be called from Temporal workflow code,
// which must do the same thing each time it is replayed. So the package
// reads no clock (every instant is an argument), starts no goroutines, does
// no I/O, and never lets map iteration order reach its output; results
// depend only on the arguments. The one exception is ParseWindow (and
// Window's UnmarshalText), which loads the named zone with
// time.LoadLocation: replays then need the same time zone data, which all
// workers built from one binary with the same tzdata have. ParseWindowIn
// takes a location the caller already loaded, for code that must not read
// zone data at all.
package schedule
